"""SAC's update on parameter-free features (state observations), differentiated by hand.

With state observations and no RLV or MEM part, the encoder is the identity and an update is the three SAC
losses on three MLPs (actor, twin critic, target critic) and ``log_alpha``. :func:`fused_sac_update` computes
those losses and their gradients with respect to the actor, the critic and ``log_alpha`` without building an
autograd graph: the forward is the same sequence of operations as ``Agent.compute_losses`` (the same layers,
the same random draws from the agent's generator, in the same order) and the backward is the derivative
autograd would take, written out with the same kernels and the same order of floating-point operations
(``networks._mlp_backward`` for the MLPs, the formulas of ``mse_loss``, ``mean``, ``minimum`` and ``mul``
backward for the losses). On the CPU the losses and gradients are therefore bit-identical to autograd's
(``tests/test_fused_sac.py`` checks that), and so is everything a run writes.

What it saves is autograd's bookkeeping: recording the graph, the engine's traversal and the per-node calls.
With (256, 256) MLPs a whole training step takes about 0.93x the time, with tiny MLPs about 0.7x
(``benchmarks/README.md``, ``train_throughput.py`` and ``agent_update.py --state``).

Gradients, per network, with B the batch and alpha = exp(log_alpha) held constant:

- critic loss MSE(Q1, y) + MSE(Q2, y): dL/dQi = 2 (Qi - y) / B, back through Qi's layers (weights, biases);
  y is a constant (the target critic and s' carry no gradient);
- actor loss mean(alpha log pi(a~|s) - min(Q1, Q2)(s, a~)) with a~ = tanh(mean + std noise): the minimum
  sends -1/B to the smaller Q-network (half to each on a tie, as ``torch.minimum``), back through that
  Q-network to its input, whose action columns are dL/da~; with dL/dlog pi = alpha / B the sample's
  derivative (``networks._SquashedGaussianSample``) gives dL/d[mean, log_std'], back through the actor;
  the critic's parameters are constants here;
- temperature loss -mean(log_alpha (log pi + target_entropy)), log pi held constant:
  dL/dlog_alpha = sum(-(1/B) (log pi + target_entropy)).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from rlmu.agent import losses as L
from rlmu.agent.networks import (
    Actor,
    Critic,
    _mlp_backward,
    _stack_layers,
    policy_noise,
    squashed_gaussian_sample,
    squashed_gaussian_sample_backward,
)


@torch.no_grad()
def fused_sac_update(
    actor: Actor,
    critic: Critic,
    critic_target: Critic,
    log_alpha: torch.Tensor,
    rng: torch.Generator,
    obs: torch.Tensor,
    action: torch.Tensor,
    reward: torch.Tensor,
    terminal: torch.Tensor,
    next_obs: torch.Tensor,
    gamma: float,
    target_entropy: float,
) -> tuple[dict[str, torch.Tensor], list[tuple[torch.Tensor, torch.Tensor]]]:
    """The SAC losses of one update and their gradients, for features that are the observations themselves.

    Args: the agent's networks, ``log_alpha`` and generator (two normal draws, as ``Agent.compute_losses``:
    the next action's noise, then the policy action's); float batches obs, next_obs (B, D), action (B, A),
    reward, terminal (B,).

    Returns ``{"loss_critic", "loss_actor", "loss_alpha"}`` (scalars, no graph) and the pairs (parameter,
    gradient) for every parameter of the actor, the critic and ``log_alpha``.
    """
    batch = obs.shape[0]
    n = len(actor.net._linears)
    hidden = n - 1
    p_actor = actor.net.linear_params()
    p_critic = critic.q1.linear_params() + critic.q2.linear_params()
    p_target = critic_target.q1.linear_params() + critic_target.q2.linear_params()
    bounds = (actor.log_std_min, actor.log_std_max)
    alpha = log_alpha.detach().exp()

    # Forward, in the order of Agent.compute_losses (the generator's draws depend on it).
    next_out = _stack_layers(next_obs, n, p_actor)[0]
    next_action, next_log_prob = squashed_gaussian_sample(next_out, policy_noise(next_out, rng), *bounds)[:2]
    q_next = _twin(_stack_layers(torch.cat([next_obs, next_action], -1), n, p_target))
    target = L.soft_td_target(reward, terminal, *q_next, next_log_prob, alpha, gamma)

    x = torch.cat([obs, action], -1)
    saved: list[torch.Tensor] = []
    q1, q2 = _twin(_stack_layers(x, n, p_critic, saved))
    loss_critic = F.mse_loss(q1, target) + F.mse_loss(q2, target)

    saved_actor: list[torch.Tensor] = []
    out = _stack_layers(obs, n, p_actor, saved_actor)[0]
    pi_action, log_prob, std_noise = squashed_gaussian_sample(out, policy_noise(out, rng), *bounds)
    x_pi = torch.cat([obs, pi_action], -1)
    saved_pi: list[torch.Tensor] = []
    qp1, qp2 = _twin(_stack_layers(x_pi, n, p_critic, saved_pi))
    loss_actor = L.actor_loss(log_prob, qp1, qp2, alpha)
    loss_alpha = L.alpha_loss(log_alpha, log_prob, target_entropy)

    # Backward. mean's backward: the incoming 1 divided by B (a float32 division, as autograd's).
    inv_batch = torch.ones((), device=obs.device, dtype=obs.dtype).div(batch)
    w_q1, w_q2 = p_critic[0 : 2 * n : 2], p_critic[2 * n :: 2]
    every = (True,) * (2 * n)
    none = (False,) * (2 * n)
    # Critic loss: mse_loss's backward, norm (input - target) * grad, norm = 2 / B.
    norm = 2.0 / batch
    grads_q1 = _mlp_backward(
        ((q1 - target) * norm).unsqueeze(1), [x, *saved[:hidden]], w_q1, every, False, batch
    )[1]
    grads_q2 = _mlp_backward(
        ((q2 - target) * norm).unsqueeze(1), [x, *saved[hidden:]], w_q2, every, False, batch
    )[1]

    # Actor loss = mean(alpha log_prob - min(Q1, Q2)): d/dmin = -1/B, split by minimum's backward.
    g_min = -inv_batch.expand(batch)
    g_either = torch.where(qp1 == qp2, g_min / 2, g_min)
    g_qp1 = g_either.masked_fill(qp1 > qp2, 0)
    g_qp2 = g_either.masked_fill_(qp1 < qp2, 0)
    g_x = _mlp_backward(g_qp1.unsqueeze(1), [x_pi, *saved_pi[:hidden]], w_q1, none, True, batch)[0]
    g_x = g_x.add_(_mlp_backward(g_qp2.unsqueeze(1), [x_pi, *saved_pi[hidden:]], w_q2, none, True, batch)[0])
    g_action = g_x[:, obs.shape[1] :]
    g_log_prob = inv_batch.expand(batch) * alpha
    g_out = squashed_gaussian_sample_backward(g_action, g_log_prob, pi_action, std_noise, out, *bounds)
    grads_actor = _mlp_backward(g_out, [obs, *saved_actor], p_actor[0::2], every, False, batch)[1]

    # Temperature loss: mul's backward summed to log_alpha's shape.
    g_log_alpha = ((-inv_batch).expand(batch) * (log_prob + target_entropy)).sum()

    losses = {"loss_critic": loss_critic, "loss_actor": loss_actor, "loss_alpha": loss_alpha}
    pairs = [
        *zip(p_actor, grads_actor, strict=True),
        *zip(p_critic, grads_q1 + grads_q2, strict=True),
        (log_alpha, g_log_alpha),
    ]
    return losses, pairs


def _twin(outputs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Q1, Q2 (B,) as ``Critic.forward`` returns them (columns of one (B, 2) tensor: the same memory layout,
    so reductions over them add in the same order)."""
    q1, q2 = torch.cat(outputs, -1).unbind(-1)
    return q1, q2
