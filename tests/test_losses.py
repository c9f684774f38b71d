"""Each loss against a value computed by hand (the arithmetic is in the comments)."""

import math

import pytest
import torch

from rlmu.agent import losses as L
from rlmu.agent.networks import squashed_gaussian_log_prob


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_soft_td_target_masks_only_true_terminals():
    # y0 = 1 + 0.9 * (min(2, 1.5) - 0.5 * -1) = 1 + 0.9 * 2 = 2.8 ; y1 is terminal: y1 = r1 = 0.
    y = L.soft_td_target(t(1.0, 0.0), t(0.0, 1.0), t(2.0, 3.0), t(1.5, 4.0), t(-1.0, 0.5), 0.5, 0.9)
    assert torch.allclose(y, t(2.8, 0.0))


def test_critic_loss_twin_mse_and_constant_target():
    # MSE([1,2],[1,3]) = 0.5 ; MSE([0,4],[1,3]) = 1.0 ; sum 1.5
    q1, q2 = t(1.0, 2.0).requires_grad_(), t(0.0, 4.0)
    target = t(1.0, 3.0).requires_grad_()
    loss = L.critic_loss(q1, q2, target)
    assert loss.item() == pytest.approx(1.5)
    loss.backward()
    assert target.grad is None  # the target is a constant
    assert torch.allclose(q1.grad, t(0.0, -1.0))  # d/dq1 of mean((q1-y)^2) = (q1 - y)


def test_actor_loss():
    # mean(0.1 * -1 - min(3, 2), 0.1 * 2 - min(1, 5)) = mean(-2.1, -0.8) = -1.45
    assert L.actor_loss(t(-1.0, 2.0), t(3.0, 1.0), t(2.0, 5.0), 0.1).item() == pytest.approx(-1.45)


def test_alpha_loss_value_and_direction():
    # log pi = [-1, -3], target entropy -2: mean(log pi + H) = -4 ; loss = -(0.5 * -4) = 2, d/dlog_alpha = 4
    log_alpha = torch.tensor(0.5, requires_grad=True)
    log_prob = t(-1.0, -3.0).requires_grad_()
    loss = L.alpha_loss(log_alpha, log_prob, -2.0)
    assert loss.item() == pytest.approx(2.0)
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(4.0)  # entropy above target -> descent lowers alpha
    assert log_prob.grad is None


def test_inverse_loss_eq1():
    # ||(0,1)-(1,1)||^2 = 1, ||(1,1)-(1,-1)||^2 = 4 ; mean 2.5
    assert L.inverse_loss(
        torch.tensor([[0.0, 1.0], [1.0, 1.0]]), torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    ).item() == pytest.approx(2.5)


def test_discriminator_and_generator_losses():
    # interaction logit 0 (p=0.5), label 0: -log 0.5 ; observation logit log 3 (p=0.75), label 1: -log 0.75
    d = L.discriminator_loss(t(0.0), t(math.log(3.0)))
    assert d.item() == pytest.approx((math.log(2) - math.log(0.75)) / 2)
    # flipped labels: interaction label 1: -log 0.5 ; observation label 0: -log 0.25
    g = L.generator_loss(t(0.0), t(math.log(3.0)), "flipped_labels")
    assert g.item() == pytest.approx((math.log(2) + math.log(4)) / 2)
    r = L.generator_loss(t(0.0), t(math.log(3.0)), "reversal")
    assert r.item() == pytest.approx(-d.item())
    with pytest.raises(ValueError, match="generator loss kind"):
        L.generator_loss(t(0.0), t(0.0), "minimax")


def test_paired_loss_eq2():
    # ||(1,2)-(0,0)||^2 = 5, ||(0,0)-(3,4)||^2 = 25 ; mean 15
    robot = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    human = torch.tensor([[0.0, 0.0], [3.0, 4.0]])
    assert L.paired_loss(robot, human).item() == pytest.approx(15.0)


def test_mem_loss_eq6():
    # uniform over 4 classes: log 4 ; logits (log 3, 0, -inf-ish) class 0: -log(3/4)
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, -1e9, -1e9]])
    label = torch.tensor([2, 0])
    assert L.mem_loss(logits, label).item() == pytest.approx((math.log(4) - math.log(0.75)) / 2)


def test_squashed_gaussian_log_prob():
    # u = 0, noise = 0, log_std = 0: -log(2 pi)/2 per dimension, no tanh correction (tanh'(0) = 1)
    lp = squashed_gaussian_log_prob(t(0.0, 0.0)[None], t(0.0, 0.0)[None], t(0.0, 0.0)[None])
    assert lp.item() == pytest.approx(-math.log(2 * math.pi))
    # u = 1 (mean 0, std 1, noise 1): -1/2 - log(2 pi)/2 - log(1 - tanh(1)^2)
    lp = squashed_gaussian_log_prob(t(1.0)[None], t(1.0)[None], t(0.0)[None])
    expected = -0.5 - 0.5 * math.log(2 * math.pi) - math.log(1 - math.tanh(1.0) ** 2)
    assert lp.item() == pytest.approx(expected, rel=1e-5)
    # saturated pre-activation stays finite (the naive log(1 - tanh^2) gives -inf)
    assert torch.isfinite(squashed_gaussian_log_prob(t(30.0)[None], t(0.0)[None], t(0.0)[None])).all()


def test_losses_of_a_pack_reduce_over_the_batch_axis_only():
    """Two members (K, B): member 0 repeats the cases above, member 1's values are worked out here; each
    loss comes out per member, (K,), and equals the loss of that member's rows alone."""
    m = torch.tensor
    # soft TD, alpha (K, 1) = (0.5, 2): member 1: 0 + 0.9 * (min(1, 2) - 2 * 0.5) = 0 ; terminal: r = 1
    y = L.soft_td_target(
        m([[1.0, 0.0], [0.0, 1.0]]),
        m([[0.0, 1.0], [0.0, 1.0]]),
        m([[2.0, 3.0], [1.0, 9.0]]),
        m([[1.5, 4.0], [2.0, 9.0]]),
        m([[-1.0, 0.5], [0.5, 9.0]]),
        m([[0.5], [2.0]]),
        0.9,
    )
    assert torch.allclose(y, m([[2.8, 0.0], [0.0, 1.0]]))
    cases = {
        # member 1: MSE([0, 0], [1, 1]) = 1 ; MSE([2, 2], [1, 1]) = 1 ; sum 2
        "critic": (
            L.critic_loss,
            (m([[1.0, 2.0], [0.0, 0.0]]), m([[0.0, 4.0], [2.0, 2.0]]), m([[1.0, 3.0], [1.0, 1.0]])),
            (1.5, 2.0),
        ),
        # member 1, alpha 1: mean(1 - min(0, 1), 1 - min(2, 1)) = mean(1, 0) = 0.5
        "actor": (
            L.actor_loss,
            (
                m([[-1.0, 2.0], [1.0, 1.0]]),
                m([[3.0, 1.0], [0.0, 2.0]]),
                m([[2.0, 5.0], [1.0, 1.0]]),
                m([[0.1], [1.0]]),
            ),
            (-1.45, 0.5),
        ),
        # member 1: log_alpha 1, log pi [0, 0], target -2: -(1 * mean(-2, -2)) = 2
        "alpha": (
            L.alpha_loss,
            (m([[0.5], [1.0]]), m([[-1.0, -3.0], [0.0, 0.0]]), -2.0),
            (2.0, 2.0),
        ),
        # member 1: ||(1,1)-(0,0)||^2 = 2, ||(0,0)-(0,0)||^2 = 0 ; mean 1
        "inverse": (
            L.inverse_loss,
            (
                m([[[0.0, 1.0], [1.0, 1.0]], [[1.0, 1.0], [0.0, 0.0]]]),
                m([[[1.0, 1.0], [1.0, -1.0]], [[0.0, 0.0], [0.0, 0.0]]]),
            ),
            (2.5, 1.0),
        ),
        # member 1: both logits 0 (p = 0.5): -log 0.5 for either label
        "discriminator": (
            L.discriminator_loss,
            (m([[0.0], [0.0]]), m([[math.log(3.0)], [0.0]])),
            ((math.log(2) - math.log(0.75)) / 2, math.log(2)),
        ),
        "generator": (
            L.generator_loss,
            (m([[0.0], [0.0]]), m([[math.log(3.0)], [0.0]])),
            ((math.log(2) + math.log(4)) / 2, math.log(2)),
        ),
        # member 1: ||(1,0)-(0,0)||^2 = 1, ||(0,0)-(0,1)||^2 = 1 ; mean 1
        "paired": (
            L.paired_loss,
            (
                m([[[1.0, 2.0], [0.0, 0.0]], [[1.0, 0.0], [0.0, 0.0]]]),
                m([[[0.0, 0.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 1.0]]]),
            ),
            (15.0, 1.0),
        ),
        # member 1: two uniform rows over 4 classes: log 4
        "mem": (
            L.mem_loss,
            (
                m([[[0.0, 0.0, 0.0, 0.0], [math.log(3.0), 0.0, -1e9, -1e9]], [[0.0] * 4, [1.0] * 4]]),
                m([[2, 0], [1, 3]]),
            ),
            ((math.log(4) - math.log(0.75)) / 2, math.log(4)),
        ),
    }
    for name, (loss_fn, args, expected) in cases.items():
        value = loss_fn(*args)
        assert value.shape == (2,), name
        assert torch.allclose(value, t(*expected)), (name, value)
        for k in range(2):  # member k's loss from its own rows (a pack of one)
            alone = loss_fn(*(a[k : k + 1] if isinstance(a, torch.Tensor) else a for a in args))
            assert torch.allclose(alone, value[k : k + 1]), (name, k)
