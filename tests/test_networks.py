"""Shapes and properties of the pack networks and of the random-shift augmentation."""

import pytest
import torch
from torch.nn import functional as F

from rlmu.agent.augment import random_shift
from rlmu.agent.networks import (
    Actor,
    ConvEncoder,
    Critic,
    Discriminator,
    Encoder,
    InverseModel,
    MemberMotionExtractor,
    MotionExtractor,
    PackLinear,
    PackMLP,
    mlp,
    scale_frames,
)


def members(k, in_dim, hidden, out_dim, seed=0):
    torch.manual_seed(seed)
    return [mlp(in_dim, hidden, out_dim) for _ in range(k)]


@pytest.mark.parametrize(("size", "repr_dim"), [(48, 1152), (64, 2048), (84, 3200)])
def test_encoder_feature_size(size, repr_dim):
    enc = Encoder((3, size, size), 2)
    assert enc.repr_dim == repr_dim
    out = enc(torch.randint(0, 256, (2, 3, 3, size, size), dtype=torch.uint8))
    assert out.shape == (2, 3, repr_dim)
    convs = list(enc.members[0].convs)
    assert [c.out_channels for c in convs] == [16, 16, 32] and all(c.kernel_size == (5, 5) for c in convs)


def test_encoder_members_are_their_conv_encoders_and_channels_last_is_the_same_function():
    torch.manual_seed(0)
    convs = [ConvEncoder((3, 16, 16), (4, 8), 5, 2) for _ in range(2)]
    a = Encoder((3, 16, 16), 2, (4, 8), 5, 2, channels_last=False, members=convs)
    b = Encoder((3, 16, 16), 2, (4, 8), 5, 2, channels_last=True, members=convs)
    x = torch.randint(0, 256, (2, 3, 3, 16, 16), dtype=torch.uint8)
    out = a(x)
    for k in range(2):  # member k's features are its own ConvEncoder on its own frames
        assert torch.equal(out[k], convs[k](scale_frames(x[k])))
    assert not torch.allclose(out[0], out[1])
    assert torch.allclose(out, b(x), atol=1e-5)


def test_grouped_convolution_path_equals_member_by_member():
    """Off the CPU the pack's convolutions run as one grouped convolution; it computes the same features
    (each member's channel-major flatten) as the member-by-member path."""
    torch.manual_seed(0)
    enc = Encoder((3, 16, 16), 3, (4, 8), 3, 2, channels_last=False)
    x = torch.randint(0, 256, (3, 5, 3, 16, 16), dtype=torch.uint8)
    assert torch.allclose(enc._grouped(x), enc(x), atol=1e-5)


def test_state_encoder_is_identity_and_bad_shapes_rejected():
    enc = Encoder((6,), 2)
    x = torch.randn(2, 4, 6)
    assert enc.repr_dim == 6 and torch.equal(enc(x), x) and not list(enc.parameters())
    with pytest.raises(ValueError, match="obs_shape"):
        Encoder((3, 4), 1)
    with pytest.raises(ValueError, match="too small"):
        Encoder((3, 4, 4), 1)


@pytest.mark.parametrize(("in_dim", "hidden", "out_dim"), [(7, (32, 32), 1), (6, (16,), 3), (9, (), 2)])
def test_pack_mlp_is_its_members_mlps(in_dim, hidden, out_dim):
    """A pack MLP's parameters are its members' own layers, and member k's slice is member k's
    nn.Sequential on member k's rows: values, input and parameter gradients (the one-output-unit layer is a
    row-wise product, the others one baddbmm)."""
    nets = members(3, in_dim, hidden, out_dim)
    pack = PackMLP(nets)
    x = torch.randn(3, 5, in_dim, requires_grad=True)
    out = pack(x)
    assert out.shape == (3, 5, out_dim)
    upstream = torch.randn_like(out)
    for k, net in enumerate(nets):
        linears = [m for m in net if isinstance(m, torch.nn.Linear)]
        assert all(layer.members[k] is linear for layer, linear in zip(pack.layers, linears, strict=True))
        assert torch.allclose(out[k], net(x[k]), atol=1e-6)
        own = list(net.parameters())
        got = torch.autograd.grad(out, [x, *own], upstream, retain_graph=True)
        ref = torch.autograd.grad(net(x[k]), [x, *own], upstream[k])
        assert torch.allclose(got[0][k], ref[0][k], atol=1e-6)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(got[1:], ref[1:], strict=True))
    assert len(list(pack.parameters())) == sum(len(list(net.parameters())) for net in nets)


def test_detached_parameters_pass_the_gradient_to_the_input_only():
    layer = PackLinear([torch.nn.Linear(4, 3) for _ in range(2)])
    x = torch.randn(2, 5, 4, requires_grad=True)
    out = layer(x, detach_params=True)
    assert torch.equal(out, layer(x))
    params = list(layer.parameters())
    gx, *gp = torch.autograd.grad(out.sum(), [x, *params], allow_unused=True)
    assert gx is not None and gx.abs().sum() > 0 and len(gp) == 4 and all(g is None for g in gp)


def test_actor_bounds_log_std_clip_and_log_prob():
    actor = Actor(members(2, 5, (8,), 6), log_std_min=-1.0, log_std_max=0.5)
    with torch.no_grad():
        for member in actor.net.layers[-1].members:
            member.bias.copy_(torch.tensor([0.0, 0.0, 0.0, 100.0, -100.0, 0.0]))
    feats = torch.randn(2, 7, 5)
    mean, log_std = actor(feats)
    assert mean.shape == log_std.shape == (2, 7, 3)
    assert log_std[..., 0].eq(0.5).all() and log_std[..., 1].eq(-1.0).all()
    noise = torch.randn(2, 7, 3, generator=torch.Generator().manual_seed(1))
    action, log_prob = actor.sample(feats, noise)
    assert action.shape == (2, 7, 3) and log_prob.shape == (2, 7)
    assert action.abs().max() < 1 and torch.isfinite(log_prob).all()
    assert torch.equal(actor.mode(feats), torch.tanh(mean))
    # the log-probability of the squashed Gaussian: Normal(mean, std) at u minus log(1 - tanh(u)^2)
    u = mean + log_std.exp() * noise
    normal = torch.distributions.Normal(mean, log_std.exp()).log_prob(u)
    expected = (normal - torch.log(1 - torch.tanh(u) ** 2)).sum(-1)
    assert torch.allclose(log_prob, expected, atol=1e-4)
    assert torch.equal(action, torch.tanh(u))


def test_critic_twins_inverse_discriminator_shapes():
    q1s, q2s = members(2, 7, (8, 8), 1, seed=0), members(2, 7, (8, 8), 1, seed=1)
    critic = Critic(q1s, q2s)
    h, a = torch.randn(2, 4, 5), torch.randn(2, 4, 2)
    q1, q2 = critic(h, a)
    assert q1.shape == q2.shape == (2, 4) and not torch.equal(q1, q2)
    x = torch.cat([h, a], -1)
    for k in range(2):  # member k's Q1 and Q2 are its own networks
        assert torch.allclose(q1[k], q1s[k](x[k]).squeeze(-1), atol=1e-6)
        assert torch.allclose(q2[k], q2s[k](x[k]).squeeze(-1), atol=1e-6)
    inv = InverseModel(members(2, 10, (8,), 2))
    pred = inv(torch.randn(2, 4, 5) * 100, torch.randn(2, 4, 5) * 100)
    assert pred.shape == (2, 4, 2) and pred.abs().max() <= 1
    assert Discriminator(members(2, 5, (8,), 1))(torch.randn(2, 4, 5)).shape == (2, 4)


def test_motion_extractor_gradient_reaches_encoder():
    enc = Encoder((3, 16, 16), 2, (4, 4), 3, 2)
    mem = MotionExtractor([MemberMotionExtractor(enc.repr_dim, 5, 8, 3) for _ in range(2)])
    assert mem.members[0].lstm.num_layers == 3
    frames = torch.randint(0, 256, (2, 3, 4, 3, 16, 16), dtype=torch.uint8)  # (K, B, k, C, H, W)
    features = enc(frames.flatten(1, 2)).view(2, 3, 4, -1)
    logits = mem(features)
    assert logits.shape == (2, 3, 5)
    assert torch.allclose(logits[1], mem.members[1](features[1]))
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
