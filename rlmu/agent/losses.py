"""Losses as pure functions of tensors (no modules, no optimizers), one per equation.

Conventions: the batch axis is the last axis of the per-sample values (before it, any leading axes, such
as the pack axis K of a seed pack: ``(K, B)``); a squared norm ||x||^2 sums over the feature/action axis and
each loss averages over the batch axis only, so a pack's losses come out per member, ``(K,)``.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def soft_td_target(
    reward: torch.Tensor,
    terminal: torch.Tensor,
    next_q1: torch.Tensor,
    next_q2: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: torch.Tensor | float,
    gamma: float,
) -> torch.Tensor:
    """SAC target y = r + gamma (1 - terminal) (min(Q1', Q2') - alpha log pi(a'|s')), all (..., B); ``alpha``
    a float or a tensor broadcasting against them (a pack's (K, 1)).

    ``terminal`` is 1 only for true terminals; time-outs keep bootstrapping."""
    soft_value = torch.min(next_q1, next_q2) - alpha * next_log_prob
    return reward + gamma * (1.0 - terminal) * soft_value


def critic_loss(q1: torch.Tensor, q2: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Twin-Q regression: MSE(Q1, y) + MSE(Q2, y); ``target`` is treated as a constant."""
    target = target.detach()
    return (q1 - target).pow(2).mean(-1) + (q2 - target).pow(2).mean(-1)


def actor_loss(
    log_prob: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor, alpha: torch.Tensor | float
) -> torch.Tensor:
    """SAC policy loss mean(alpha log pi(a|s) - min(Q1, Q2)(s, a)) with a ~ pi reparameterised."""
    return (alpha * log_prob - torch.min(q1, q2)).mean(-1)


def alpha_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """Temperature loss -mean(log_alpha (log pi + target_entropy)), the log-probabilities held constant: the
    gradient raises alpha while the policy entropy is below the target. ``log_alpha`` broadcasts against
    ``log_prob`` (a pack's (K, 1) against (K, B))."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean(-1)


def inverse_loss(predicted_action: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Eq. 1: mean over the batch of ||a_int - f_inv(h, h')||^2 (interaction transitions only)."""
    return (predicted_action - action).pow(2).sum(-1).mean(-1)


def discriminator_loss(logits_int: torch.Tensor, logits_obs: torch.Tensor) -> torch.Tensor:
    """Domain BCE over both batches: interaction labelled 0, observation 1 (mean over all samples)."""
    logits = torch.cat([logits_int, logits_obs], -1)
    labels = torch.cat([torch.zeros_like(logits_int), torch.ones_like(logits_obs)], -1)
    return F.binary_cross_entropy_with_logits(logits, labels, reduction="none").mean(-1)


def generator_loss(
    logits_int: torch.Tensor, logits_obs: torch.Tensor, kind: str = "flipped_labels"
) -> torch.Tensor:
    """What the encoder minimises in adversarial mode (the max over psi of Eq. 4).

    ``flipped_labels``: BCE with the domain labels swapped (ADDA); ``reversal``: minus the discriminator
    BCE, i.e. gradient reversal."""
    if kind == "flipped_labels":
        return discriminator_loss(logits_obs, logits_int)  # swapping the arguments swaps the labels
    if kind == "reversal":
        return -discriminator_loss(logits_int, logits_obs)
    raise ValueError(f"generator loss kind must be 'flipped_labels' or 'reversal', got {kind!r}")


def paired_loss(features_robot: torch.Tensor, features_human: torch.Tensor) -> torch.Tensor:
    """Eq. 2: mean over pairs of ||f_enc(s_int,pair) - f_enc(s_obs,pair)||^2."""
    return (features_robot - features_human).pow(2).sum(-1).mean(-1)


def mem_loss(logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """Eq. 6: cross-entropy of the position-class logits (..., B, n_classes) against the class of m (..., B),
    mean over the batch axis."""
    per_sample = F.cross_entropy(logits.flatten(0, -2), label.flatten(), reduction="none")
    return per_sample.view(label.shape).mean(-1)
