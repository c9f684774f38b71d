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


def _sequential_reference(nets, x):
    """The stacks through plain nn.Sequential autograd (the modules' own layers)."""
    return torch.cat([torch.nn.Sequential.forward(net, x) for net in nets], -1)


@pytest.mark.parametrize(
    ("in_dim", "hidden", "out_dim", "k"),
    [(7, (32, 32), 1, 2), (6, (32,), 2, 1), (40, (24, 24), 3, 1), (20, (16,), 1, 2), (9, (), 2, 1)],
)
@pytest.mark.parametrize("sparse", [False, True])
def test_mlp_function_matches_sequential_autograd(in_dim, hidden, out_dim, k, sparse):
    """One-node MLP stacks (mlp_forward) give nn.Sequential's values, input and parameter gradients, with a
    dense output gradient and with one whose rows are mostly zero (the min(Q1, Q2) case); with
    grad_params=False the input gradient is the same and no parameter gets one."""
    from rlmu.agent.networks import mlp, mlp_forward

    torch.manual_seed(0)
    nets = [mlp(in_dim, hidden, out_dim).double() for _ in range(k)]
    params = [p for net in nets for p in net.parameters()]
    x = torch.randn(64, in_dim, dtype=torch.double, requires_grad=True)
    g = torch.randn(64, k * out_dim, dtype=torch.double)
    if sparse:  # each network gets a gradient on a different quarter of the rows
        mask = torch.zeros_like(g)
        for j in range(k):
            mask[16 * j : 16 * (j + 1), j * out_dim : (j + 1) * out_dim] = 1
        g = g * mask
    ref_out = _sequential_reference(nets, x)
    ref = torch.autograd.grad(ref_out, [x, *params], g)
    out = mlp_forward(nets, x)
    got = torch.autograd.grad(out, [x, *params], g)
    assert torch.allclose(out, ref_out, atol=1e-12)
    for a, b in zip(got, ref, strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    out = mlp_forward(nets, x, grad_params=False)
    (gx,) = torch.autograd.grad(out, x, g)
    assert torch.allclose(gx, ref[0], atol=1e-10)
    assert all(p.grad is None for p in params)
    no_param_grads = torch.autograd.grad(
        mlp_forward(nets, x, grad_params=False).sum(), params, allow_unused=True
    )
    assert no_param_grads == (None,) * len(params)
    with torch.no_grad():  # the plain no-gradient path
        assert torch.allclose(mlp_forward(nets, x), ref_out, atol=1e-12)


def test_mlp_function_gradcheck_and_module_layout():
    from rlmu.agent.networks import MLP, _MLPFunction, mlp

    torch.manual_seed(0)
    nets = [mlp(5, (6, 6), 1).double(), mlp(5, (6, 6), 1).double()]
    params = [p.detach().clone().requires_grad_(True) for net in nets for p in net.parameters()]
    x = torch.randn(8, 5, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, *p: _MLPFunction.apply(x, 2, 3, *p), (x, *params))
    # An nn.Sequential of Linear and ReLU: the state-dict keys and initialisation of nn.Sequential.
    net = mlp(6, (32, 32), 2)
    assert isinstance(net, MLP) and isinstance(net, torch.nn.Sequential)
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
    y = torch.randn(3, 4, 6)  # inputs other than 2-D take the plain path
    assert net(y).shape == (3, 4, 2) and torch.allclose(net(y), torch.nn.Sequential.forward(net, y))


def test_squashed_gaussian_sample_node_matches_composed_operations():
    """The actor's one-node sample (hand-written backward) gives the values and gradients of the composed
    clamp / exp / tanh / log-probability operations, inside and outside the log-std clamp."""
    from rlmu.agent.networks import _SquashedGaussianSample, squashed_gaussian_log_prob

    torch.manual_seed(0)
    out = (torch.randn(40, 6, dtype=torch.double) * 3).requires_grad_(True)  # some log-stds clamped
    noise = torch.randn(40, 3, dtype=torch.double)

    def composed(o):
        mean, log_std = o[:, :3], o[:, 3:].clamp(-2.0, 1.0)
        u = mean + log_std.exp() * noise
        return torch.tanh(u), squashed_gaussian_log_prob(u, noise, log_std)

    assert torch.autograd.gradcheck(lambda o: _SquashedGaussianSample.apply(o, noise, -2.0, 1.0), (out,))
    got, ref = _SquashedGaussianSample.apply(out, noise, -2.0, 1.0), composed(out)
    assert all(torch.allclose(a, b, atol=1e-12) for a, b in zip(got, ref, strict=True))
    ga, gl = torch.randn(40, 3, dtype=torch.double), torch.randn(40, dtype=torch.double)
    (g_got,) = torch.autograd.grad((got[0] * ga).sum() + (got[1] * gl).sum(), out)
    (g_ref,) = torch.autograd.grad((ref[0] * ga).sum() + (ref[1] * gl).sum(), out)
    # Equal up to torch's softplus, whose linear branch (input > 20) has slope 1 instead of sigmoid.
    assert torch.allclose(g_got, g_ref, atol=1e-6)
    assert (g_got[:, 3:] == 0).any()  # clamped log-stds get no gradient
